"""Developer tools that run the program offline: the mock runner and the synth command."""
