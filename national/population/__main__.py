from national._common.app import main
from national.population.app import create_app

if __name__ == "__main__":
    main("population", create_app)
