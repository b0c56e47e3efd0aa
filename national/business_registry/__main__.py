from national._common.app import main
from national.business_registry.app import create_app

if __name__ == "__main__":
    main("business_registry", create_app)
