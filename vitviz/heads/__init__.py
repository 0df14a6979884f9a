"""Which heads matter: direct logit attribution (attribution), heads switched off (knockout) and
the `heads` command (cli)."""
