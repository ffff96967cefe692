"""Call routing: a discrete-event engine on a virtual clock, endpoints, and routing lint."""
