-- Run by the postgres image on its first start (an empty data directory): one database per
-- LGSP service (no service reads another's tables) and Keycloak's. Each service's migrations
-- (Alembic) make its tables when it starts.
CREATE DATABASE gateway;
CREATE DATABASE identity;
CREATE DATABASE documents;
CREATE DATABASE dossiers;
CREATE DATABASE search;
CREATE DATABASE mail;
CREATE DATABASE keycloak;
