"""PDF work: preparation, signing, sealing, verification. The only pyHanko user."""
