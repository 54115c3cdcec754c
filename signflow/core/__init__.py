"""The domain: rounds, signers, audit. Free of Flask, RQ and pyHanko."""
