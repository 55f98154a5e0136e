"""The Slack side of the sandbox: a Slack Web API fake, a signed driver, the demo."""
