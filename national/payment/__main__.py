from national._common.app import main
from national.payment.app import add_options, create_app

if __name__ == "__main__":
    main("payment", create_app, add_options)
