// Marks the current section in the navigation (no network access).
document.addEventListener("DOMContentLoaded", () => {
  for (const a of document.querySelectorAll("a")) {
    if (a.getAttribute("href") === location.hash) a.classList.add("current");
  }
});
