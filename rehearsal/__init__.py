"""The local rehearsal: the stack the program declares, stood up on this machine and run end to end."""
