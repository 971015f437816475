#!/usr/bin/env bash
# Wait for the Riak node of docker-compose.yml, then create and activate the map bucket
# type riaktq-py uses. With RIAKTQ_SEARCH_INDEX set (Riak 2.x only), also upload the Solr
# schema, create the index and attach it to the bucket type.
#
#   docker/setup-riak.sh                                  # riak://127.0.0.1:8087/riaktq_task_t/task
#   RIAKTQ_SEARCH_INDEX=riaktq_task docker/setup-riak.sh  # ...?index=riaktq_task
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
compose=(docker compose -f "$here/docker-compose.yml")
bucket_type="${RIAKTQ_BUCKET_TYPE:-riaktq_task_t}"
index="${RIAKTQ_SEARCH_INDEX:-}"
http="${RIAKTQ_RIAK_HTTP:-http://127.0.0.1:8098}"
tries="${RIAKTQ_WAIT_TRIES:-120}"

echo "waiting for Riak at $http ..."
for ((i = 1; i <= tries; i++)); do
  if curl -fsS "$http/ping" >/dev/null 2>&1; then break; fi
  if ((i == tries)); then echo "Riak did not answer $http/ping" >&2; exit 1; fi
  sleep 1
done

# Riak 2.x ships riak-admin; Riak 3.x (OpenRiak) has "riak admin".
if "${compose[@]}" exec -T riak sh -c 'command -v riak-admin' >/dev/null 2>&1; then
  admin=(riak-admin)
else
  admin=(riak admin)
fi
run_admin() { "${compose[@]}" exec -T riak "${admin[@]}" "$@"; }

run_admin wait-for-service riak_kv

if run_admin bucket-type status "$bucket_type" >/dev/null 2>&1; then
  echo "bucket type $bucket_type exists"
else
  run_admin bucket-type create "$bucket_type" '{"props":{"datatype":"map"}}'
fi
run_admin bucket-type activate "$bucket_type" || true   # already active is fine

if [[ -n "$index" ]]; then
  curl -fsS -XPUT "$http/search/schema/riaktq_task" \
    -H 'Content-Type: application/xml' --data-binary @"$here/riaktq_task.xml"
  curl -fsS -XPUT "$http/search/index/$index" \
    -H 'Content-Type: application/json' -d '{"schema":"riaktq_task"}'
  echo "waiting for index $index ..."
  for ((i = 1; i <= tries; i++)); do
    if curl -fsS "$http/search/index/$index" >/dev/null 2>&1; then break; fi
    sleep 1
  done
  run_admin bucket-type update "$bucket_type" "{\"props\":{\"search_index\":\"$index\"}}"
fi

run_admin bucket-type status "$bucket_type" | grep -E 'active|datatype|search_index' || true
url="riak://127.0.0.1:8087/$bucket_type/task"
[[ -n "$index" ]] && url="$url?index=$index"
echo "ready: $url"
