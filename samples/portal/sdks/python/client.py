class Client:
    def __init__(self, base):
        self.base = base

    def advisories(self):
        return self.base + "/advisories"
