"""The payments service: orders, checkout verification, provider webhooks, GST invoices, subscriptions."""
