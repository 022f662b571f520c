from interlink.cli.main import run

run()
