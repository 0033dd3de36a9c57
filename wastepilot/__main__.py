from wastepilot.cli import main

main()
