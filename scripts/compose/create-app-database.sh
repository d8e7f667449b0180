#!/bin/sh
# Postgres init hook (first start only): the application's role and database beside Temporal's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE ffc LOGIN PASSWORD '${FFC_DB_PASSWORD:-ffc}';
CREATE DATABASE ffc OWNER ffc;
SQL
