"""``python -m gateway.simulator``: run the exchange simulator until interrupted."""

from gateway.simulator.cli import main

main()
