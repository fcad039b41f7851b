"""What the web routes share: authentication and access as dependencies, forms, pages and fragments, errors, security
headers, body limits, sending files."""
