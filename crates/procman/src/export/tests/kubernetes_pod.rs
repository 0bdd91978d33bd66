//! What the pod of a process holds where a value of the config cannot be
//! written as it is: a probe's credentials.

use super::tests::{config, rendered, stream};
use super::*;

#[test]
fn url_credentials_are_percent_decoded_into_the_authorization_header() {
    let r = rendered(concat!(
        "  - id: a\n    management:\n      control: {executable: /bin/a}\n",
        "      health_check: {http_endpoint: \"http://us%3Aer:p%40ss@localhost:8080/health\"}\n",
    ));
    // base64 of `us:er:p@ss`.
    let header = "httpHeaders:\n                - name: Authorization\n                  value: \"Basic dXM6ZXI6cEBzcw==\"\n";
    assert!(stream(&r).contains(header), "{}", stream(&r));
    let r = render(
        &config(concat!(
            "  - id: a\n    management:\n      control: {executable: /bin/a}\n",
            "      health_check: {http_endpoint: \"http://admin@localhost:8080/\"}\n",
        )),
        &Options {
            name: "app".into(),
            image: Some("i".into()),
        },
    )
    .expect("rendered");
    // `admin:`, a user without a password.
    assert!(
        stream(&r).contains("value: \"Basic YWRtaW46\"\n"),
        "{}",
        stream(&r)
    );
}
