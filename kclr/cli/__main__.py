from kclr.cli import main

main()
