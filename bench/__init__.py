"""`make bench`: latency, overhead and scale figures of aistack, measured on 127.0.0.1."""
