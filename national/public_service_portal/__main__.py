from national._common.app import main
from national.public_service_portal.app import add_options, create_app

if __name__ == "__main__":
    main("public_service_portal", create_app, add_options)
