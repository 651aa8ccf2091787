"""Shop integrations and the storefront tracker: what feeds the marketing data core.

- :mod:`.registry`: the connected shops (kind, name, webhook secret) and their receipts.
- :mod:`.webhooks`: the pipeline every shop webhook goes through (verify → parse → dedupe
  → map → apply, one transaction with its receipt).
- :mod:`.shopify`, :mod:`.woocommerce`: each shop's headers and topic mappings.
- :mod:`.apply`: the writes the mappings ask for; :mod:`.payload`: typed payload reading.
"""
