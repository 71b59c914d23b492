from membership.cli import main

main()
