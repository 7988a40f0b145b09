"""One module per kubectl-* executable. Commands are thin: flags in, a library call, output out."""
