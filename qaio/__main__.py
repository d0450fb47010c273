from qaio.cli.main import main

main()
