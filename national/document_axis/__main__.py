from national._common.app import main
from national.document_axis.app import create_app

if __name__ == "__main__":
    main("document_axis", create_app)
