"""Small helpers every part of the project shares (errors, the command-line wrapper, box formats,
devices, atomic writes, the progress bar); nothing here imports the network or the training stack."""
