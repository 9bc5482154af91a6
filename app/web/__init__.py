"""What every area's views share: roles and the bar in scope (security), errors, template
filters, form bits, query strings, htmx answers and the keyset pager."""
