"""Which heads matter: direct logit attribution (attribution), heads switched off (knockout), and the
queries and keys of many photos (qk, AttentionViz). Their commands are in vitviz/commands/."""
