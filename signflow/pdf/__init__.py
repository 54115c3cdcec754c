"""PDF work: preparation, signing, sealing, verification. The only pyHanko user."""

from signflow.pdf import fast_hex

fast_hex.install()  # pyHanko reads signatures' hex /Contents byte by byte otherwise
