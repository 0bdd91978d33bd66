//! schemathesis (an independent tool) against our OpenAPI document.
