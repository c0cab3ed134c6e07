from nse_hw.cli import main

main()
