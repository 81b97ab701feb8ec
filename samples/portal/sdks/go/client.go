package exampleapi

// Client calls the Example API.
type Client struct{ Base string }

// Advisories returns the URL of the advisories list.
func (c Client) Advisories() string { return c.Base + "/advisories" }
