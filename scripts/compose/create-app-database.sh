#!/bin/sh
# Postgres init hook (first start only): the application's role and database beside Temporal's.
# The password goes in as a psql variable and is quoted by psql (:'name'), so no character in it can
# end the string literal or add SQL of its own.
set -eu
psql -v ON_ERROR_STOP=1 -v app_password="${FFC_DB_PASSWORD:-ffc}" --username "$POSTGRES_USER" <<'SQL'
CREATE ROLE ffc LOGIN PASSWORD :'app_password';
CREATE DATABASE ffc OWNER ffc;
SQL
