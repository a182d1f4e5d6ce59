#!/usr/bin/env bash
# Publishes the layer zip as a new version of a Lambda layer and prints the new LayerVersionArn
# on standard output. Progress and errors go to standard error.
#
# Environment:
#   LAYER_ZIP          zip to publish (default: dist/telemetry-ext-layer.zip in this repository)
#   LAYER_NAME         layer name (default: telemetry-ext)
#   LAYER_DESCRIPTION  version description (default: the package version and the zip's sha256)
#   AWS                AWS CLI command (default: aws)
#   AWS_REGION, AWS_DEFAULT_REGION
#                      region to publish in; AWS_REGION wins when both are set. Without either,
#                      the CLI's profile configuration decides.
#   AWS_ENDPOINT_URL   endpoint to send the request to instead of the public Lambda endpoint,
#                      such as a local moto server
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
aws_cli="${AWS:-aws}"
layer_name="${LAYER_NAME:-telemetry-ext}"
layer_zip="${LAYER_ZIP:-$repo_root/dist/telemetry-ext-layer.zip}"

fail() {
  printf 'publish.sh: error: %s\n' "$1" >&2
  exit 1
}

if [[ ! -f "$layer_zip" ]]; then
  fail "layer zip not found: $layer_zip. Run 'make package' first, or set LAYER_ZIP to an existing zip."
fi
if ! command -v "$aws_cli" >/dev/null 2>&1; then
  fail "AWS CLI not found: '$aws_cli'. Install it (pip install awscli) or set AWS to its path."
fi

# Prints the file's sha256, or nothing where neither sha256sum nor shasum is installed.
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d ' ' -f 1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d ' ' -f 1
  fi
  return 0
}

package_version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo_root/src/telemetry_ext/__init__.py" 2>/dev/null || true)"
zip_sha256="$(sha256_of "$layer_zip")"
default_description="telemetry-ext ${package_version:-unknown version}: external extension that ships Lambda Telemetry API data"
if [[ -n "$zip_sha256" ]]; then
  default_description+=" (zip sha256 $zip_sha256)"
fi
description="${LAYER_DESCRIPTION:-$default_description}"

# An empty array expands with ${global_options[@]+...} below, because bash before 4.4 (macOS)
# treats "${global_options[@]}" of an empty array as unbound under set -u.
global_options=()
# botocore, which AWS CLI v1 runs on, reads the region from AWS_DEFAULT_REGION only, so
# AWS_REGION is passed on explicitly.
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
if [[ -n "$region" ]]; then
  global_options+=(--region "$region")
fi
# The AWS CLI in .venv (awscli 1.46 with botocore 1.44) reads AWS_ENDPOINT_URL itself, but older
# releases ignore it. Passing it as --endpoint-url makes every release send the request there.
if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  global_options+=(--endpoint-url "$AWS_ENDPOINT_URL")
fi

printf 'publishing %s as layer %s%s\n' \
  "$layer_zip" "$layer_name" "${AWS_ENDPOINT_URL:+ to $AWS_ENDPOINT_URL}" >&2

layer_version_arn="$(
  "$aws_cli" ${global_options[@]+"${global_options[@]}"} lambda publish-layer-version \
    --layer-name "$layer_name" \
    --description "$description" \
    --license-info Apache-2.0 \
    --zip-file "fileb://$layer_zip" \
    --compatible-runtimes python3.9 python3.10 python3.11 python3.12 python3.13 python3.14 \
    --compatible-architectures x86_64 arm64 \
    --query LayerVersionArn \
    --output text
)"

if [[ ! "$layer_version_arn" =~ ^arn:[^:]+:lambda:[^:]*:[0-9]+:layer:[^:]+:[0-9]+$ ]]; then
  fail "the AWS CLI returned no layer version ARN, but this output: '$layer_version_arn'"
fi
printf '%s\n' "$layer_version_arn"
