//! JavaScript and TypeScript stacks (Node, Chrome, Firefox).

use super::{assert_different, assert_same, fp};
use crate::crash::Language;

const BASE: &str = "TypeError: Cannot read properties of undefined (reading 'id')
    at getUser (/home/carol/app/src/users.js:14:22)
    at Object.handler [as handle] (/home/carol/app/src/routes/users.js:8:18)
    at Layer.handle [as handle_request] (/home/carol/app/node_modules/express/lib/router/layer.js:95:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
";

#[test]
fn the_same_crash_elsewhere_fingerprints_the_same() {
    assert_same(
        BASE,
        &[
            (
                "Node's uncaught report on another machine and version",
                "/srv/app/src/users.js:15
    return req.user.id;
                    ^

TypeError: Cannot read properties of undefined (reading 'id')
    at getUser (/srv/app/src/users.js:15:21)
    at Object.handler (/srv/app/src/routes/users.js:9:18)
    at async Promise.all (index 0)
    at Layer.handle [as handle_request] (/srv/app/node_modules/express/lib/router/layer.js:97:5)

Node.js v20.11.1
",
            ),
            (
                "a bundle served from a CDN, other content hash",
                "Uncaught TypeError: Cannot read properties of undefined (reading 'id')
    at getUser (https://cdn.example.com/assets/users.1a2b3c4d.js:1:2345)
    at Object.handler (https://cdn.example.com/assets/users.1a2b3c4d.js:1:987)
",
            ),
            (
                "Firefox's format",
                "TypeError: can't access property \"id\", req.user is undefined
getUser@https://shop.example.com/static/users.9f8e7d6c.js:1:2300
handler@https://shop.example.com/static/users.9f8e7d6c.js:1:900
",
            ),
        ],
    );
}

#[test]
fn other_code_paths_fingerprint_differently() {
    assert_different(
        BASE,
        &[
            (
                "another error type",
                &BASE.replace("TypeError", "ReferenceError"),
            ),
            (
                "another top frame",
                &BASE.replace("at getUser", "at getAccount"),
            ),
        ],
    );
}

#[test]
fn frames_are_module_and_function_without_node_internals() {
    let f = fp(BASE);
    assert_eq!(f.language, Language::JavaScript);
    assert_eq!(f.crash_type, "TypeError");
    assert_eq!(f.frames, ["users.getUser", "users.handler"]);
}
