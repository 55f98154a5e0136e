"""aistack's Slack edge: commands and buttons in, cards and thread replies out."""
