from national._common.app import main
from national.payment.app import create_app

if __name__ == "__main__":
    main("payment", create_app)
