#!/bin/sh
# The shop's order walk through the published port: register and log in as
# a customer, create a product as the shop's admin (ADMIN_EMAIL and
# ADMIN_PASSWORD, by default those of examples/shop/weft.yaml), order it as
# the customer, read the order back. Exit 0 when every step answered as
# expected. Used as a steady-state probe by the experiments here.
# usage: order-walk.sh BASE_URL   (e.g. http://127.0.0.1:8080)
set -eu
base=${1:-http://127.0.0.1:8080}/api/v1
email="walk-$$-$(date +%s%N)@example.com"
c() { curl -sS -m 10 -o /tmp/.walk.$$ -w '%{http_code}' "$@"; }
trap 'rm -f /tmp/.walk.$$' EXIT
want() { code=$1; shift; got=$(c "$@"); [ "$got" = "$code" ] || { echo "$* -> $got (want $code): $(cat /tmp/.walk.$$)" >&2; exit 1; }; }
want 201 -X POST "$base/auth/register" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$email\",\"password\":\"Secret123\",\"first_name\":\"Chaos\",\"last_name\":\"Walk\"}"
uid=$(sed -n 's/.*"id": *\([0-9]*\).*/\1/p' /tmp/.walk.$$)
want 200 -X POST "$base/auth/login" --data-urlencode "username=$email" --data-urlencode 'password=Secret123'
token=$(sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p' /tmp/.walk.$$)
auth="Authorization: Bearer $token"
want 200 -X POST "$base/auth/login" --data-urlencode "username=${ADMIN_EMAIL:-admin@shop.example}" --data-urlencode "password=${ADMIN_PASSWORD:-Change-me-Admin-0}"
admin="Authorization: Bearer $(sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p' /tmp/.walk.$$)"
want 201 -X POST "$base/products/" -H "$admin" -H 'Content-Type: application/json' \
  -d '{"name":"Chaos Monkey","description":"plush","category":"chaos-walk","price":9.99,"quantity":1000}'
pid=$(sed -n 's/.*"_id": *"\([^"]*\)".*/\1/p' /tmp/.walk.$$)
want 201 -X POST "$base/orders/" -H "$auth" -H 'Content-Type: application/json' \
  -d "{\"user_id\":$uid,\"shipping_address\":{\"line1\":\"1 Chaos St\",\"city\":\"London\",\"state\":\"LDN\",\"postal_code\":\"N1\",\"country\":\"UK\"},\"items\":[{\"product_id\":\"$pid\",\"quantity\":1,\"price\":9.99}]}"
oid=$(sed -n 's/.*"_id": *"\([^"]*\)".*/\1/p' /tmp/.walk.$$)
want 200 "$base/orders/$oid" -H "$auth"
echo "order $oid placed by user $uid"
