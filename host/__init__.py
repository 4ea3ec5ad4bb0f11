"""hilkit host side: CLI, links, protocol, runners, reports."""
