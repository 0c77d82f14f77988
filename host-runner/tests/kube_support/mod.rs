//! A small in-memory Kubernetes API behind `tower_test::mock::pair` (the kube-rs
//! convention). Every request is recorded and must be described by
//! `dnswarden::kube::api::API_USAGE` (so a new call without RBAC fails the tests).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dnswarden::kube::api::{API_USAGE, ApiCall, ApiUse, Scope};
use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower_test::mock::{Handle, SendResponse};

/// A request as the API saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub body: Value,
    pub content_type: Option<String>,
}

pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap();
            out.push(h);
            i += 3;
        } else if b[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

pub async fn seen_of(req: Request<Body>) -> Seen {
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect();
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Seen {
        method,
        path,
        query,
        body,
        content_type,
    }
}

/// Which table entry a request is. Panics when none is: that call has no RBAC.
pub fn classify(s: &Seen, coredns_ns: &str, runner_ns: &str) -> &'static ApiUse {
    let parts: Vec<&str> = s.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => panic!("unexpected path {}", s.path),
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] => (Some(*ns), rest),
        rest => (None, rest),
    };
    let (resource, named) = match rest {
        [r] => (r.to_string(), false),
        [r, _name] => (r.to_string(), true),
        [r, _name, sub] => (format!("{r}/{sub}"), true),
        _ => panic!("unexpected path {}", s.path),
    };
    let watch = s.query.get("watch").is_some_and(|v| v == "true");
    let verb = match (&s.method, named, watch) {
        (&Method::GET, false, true) => "watch",
        (&Method::GET, false, false) => "list",
        (&Method::GET, true, _) => "get",
        (&Method::POST, _, _) => "create",
        (&Method::PUT, _, _) => "update",
        (&Method::PATCH, _, _) => "patch",
        (&Method::DELETE, _, _) => "delete",
        (m, _, _) => panic!("unexpected method {m}"),
    };
    let scope_ok = |u: &ApiUse| match u.scope {
        Scope::CoreDns => ns == Some(coredns_ns),
        Scope::Runner => ns == Some(runner_ns),
        Scope::Watched => true,
    };
    API_USAGE
        .iter()
        .find(|u| u.group == group && u.resource == resource && u.verbs.contains(&verb) && scope_ok(u))
        .unwrap_or_else(|| panic!("request {} {} ({group}/{resource} {verb} in {ns:?}) is not in API_USAGE: add it there and to deploy/rbac.yaml", s.method, s.path))
}

pub fn json_response(status: u16, v: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .body(Body::from(serde_json::to_vec(v).unwrap()))
        .unwrap()
}

pub fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

pub fn mock_client() -> (Client, Handle<Request<Body>, Response<Body>>) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

/// Waits for the next request (10 s of *virtual* time is plenty; real time is not used).
pub async fn next(
    handle: &mut Handle<Request<Body>, Response<Body>>,
) -> (Seen, SendResponse<Response<Body>>) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .expect("a request")
        .expect("client alive");
    (seen_of(req).await, send)
}

// ---------------------------------------------------------------------------
// A fake cluster for watchers: list + one-event-per-watch-response.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Stored {
    /// (collection path without namespace, e.g. "api/v1/services"), namespace, name
    ns: String,
    name: String,
    obj: Value,
    rv: u64,
}

#[derive(Debug, Default)]
struct State {
    rv: u64,
    objects: BTreeMap<(String, String, String), Stored>,
    /// (resource key, event type, object, rv)
    log: Vec<(String, &'static str, Value, u64)>,
    requests: Vec<(Seen, ApiCall)>,
    fail_next_list: Option<String>,
    /// Per resource key: watches from before this resourceVersion get 410 Gone
    /// (history compacted), as etcd compaction does.
    compacted: BTreeMap<String, u64>,
}

/// The fake cluster; clone it into tests to push changes.
#[derive(Debug, Clone, Default)]
pub struct FakeCluster {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

fn resource_key(obj: &Value) -> String {
    let api = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let plural = match kind {
        "Service" => "services",
        "EndpointSlice" => "endpointslices",
        "Pod" => "pods",
        k => panic!("fake cluster does not store {k}"),
    };
    if api == "v1" {
        format!("api/v1/{plural}")
    } else {
        format!("apis/{api}/{plural}")
    }
}

fn selector_matches(sel: Option<&String>, obj: &Value) -> bool {
    let Some(sel) = sel.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &obj["metadata"]["labels"];
    sel.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => labels[k].as_str() == Some(v),
        None => !labels[term].is_null(),
    })
}

/// An object as the API serves it (with `apiVersion` and `kind`) and its storage key
/// (resource, namespace, name).
fn typed<K: serde::Serialize + k8s_openapi::Resource>(
    obj: &K,
) -> (Value, (String, String, String)) {
    let mut v = serde_json::to_value(obj).unwrap();
    v["apiVersion"] = json!(K::API_VERSION);
    v["kind"] = json!(K::KIND);
    let key = resource_key(&v);
    let ns = v["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = v["metadata"]["name"].as_str().unwrap().to_string();
    (v, (key, ns, name))
}

impl FakeCluster {
    pub fn apply<K: serde::Serialize + k8s_openapi::Resource>(&self, obj: &K) {
        let (mut v, (key, ns, name)) = typed(obj);
        let mut st = self.state.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        let existed = st
            .objects
            .insert(
                (key.clone(), ns.clone(), name.clone()),
                Stored {
                    ns,
                    name,
                    obj: v.clone(),
                    rv,
                },
            )
            .is_some();
        st.log
            .push((key, if existed { "MODIFIED" } else { "ADDED" }, v, rv));
        drop(st);
        self.changed.notify_waiters();
    }

    pub fn delete<K: serde::Serialize + k8s_openapi::Resource>(&self, obj: &K) {
        let (mut v, (key, ns, name)) = typed(obj);
        let mut st = self.state.lock().unwrap();
        st.rv += 1;
        let rv = st.rv;
        st.objects.remove(&(key.clone(), ns, name));
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.log.push((key, "DELETED", v, rv));
        drop(st);
        self.changed.notify_waiters();
    }

    /// Removes a stored object with a `DELETED` watch event (as the API server does when
    /// an eviction goes through).
    fn remove(&self, key: &str, ns: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        let Some(stored) = st
            .objects
            .remove(&(key.to_string(), ns.to_string(), name.to_string()))
        else {
            return;
        };
        st.rv += 1;
        let rv = st.rv;
        let mut v = stored.obj;
        v["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.log.push((key.to_string(), "DELETED", v, rv));
        drop(st);
        self.changed.notify_waiters();
    }

    /// Removes an object without a watch event (as if the event was lost to etcd
    /// compaction), then makes every older watch of that resource answer `410 Gone`, forcing a re-list.
    pub fn delete_silently_and_expire<K: serde::Serialize + k8s_openapi::Resource>(&self, obj: &K) {
        let (_, (key, ns, name)) = typed(obj);
        let mut st = self.state.lock().unwrap();
        st.rv += 1;
        st.objects.remove(&(key.clone(), ns, name));
        let rv = st.rv;
        st.compacted.insert(key, rv);
        drop(st);
        self.changed.notify_waiters();
    }

    /// The next list request fails with this HTTP 500 message (then lists work again).
    pub fn fail_next_list(&self, message: &str) {
        self.state.lock().unwrap().fail_next_list = Some(message.into());
    }

    pub fn requests(&self) -> Vec<(Seen, ApiCall)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Serves requests until the client is dropped.
    pub fn serve(
        &self,
        mut handle: Handle<Request<Body>, Response<Body>>,
        coredns_ns: &'static str,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let seen = seen_of(req).await;
                let use_ = classify(&seen, coredns_ns, "dnswarden");
                me.state
                    .lock()
                    .unwrap()
                    .requests
                    .push((seen.clone(), use_.call));
                let me2 = me.clone();
                tokio::spawn(async move { me2.answer(seen, send).await });
            }
        })
    }

    async fn answer(&self, seen: Seen, send: SendResponse<Response<Body>>) {
        let parts: Vec<&str> = seen.path.trim_start_matches('/').split('/').collect();
        if seen.method == Method::POST {
            if let ["api", "v1", "namespaces", ns, "pods", name, "eviction"] = parts.as_slice() {
                // No PodDisruptionBudget here: the API server deletes the pod.
                self.remove("api/v1/pods", ns, name);
                let ok = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
                send.send_response(json_response(201, &ok));
            } else {
                // Creates (Events): echo the object.
                send.send_response(json_response(201, &seen.body));
            }
            return;
        }
        let (key, ns) = match parts.as_slice() {
            ["api", v, "namespaces", ns, r] => (format!("api/{v}/{r}"), Some(ns.to_string())),
            ["api", v, r] => (format!("api/{v}/{r}"), None),
            ["apis", g, v, "namespaces", ns, r] => {
                (format!("apis/{g}/{v}/{r}"), Some(ns.to_string()))
            }
            ["apis", g, v, r] => (format!("apis/{g}/{v}/{r}"), None),
            _ => panic!("fake cluster cannot answer {}", seen.path),
        };
        let sel = seen.query.get("labelSelector");
        let in_scope = |obj_ns: &str| ns.as_deref().is_none_or(|n| n == obj_ns);
        if seen.query.get("watch").is_some_and(|v| v == "true") {
            let since: u64 = seen
                .query
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            loop {
                let notified = self.changed.notified();
                {
                    let st = self.state.lock().unwrap();
                    if st.compacted.get(&key).is_some_and(|&c| since < c) {
                        let gone = json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")});
                        send.send_response(
                            Response::builder()
                                .body(Body::from(serde_json::to_vec(&gone).unwrap()))
                                .unwrap(),
                        );
                        return;
                    }
                }
                let ev = {
                    let st = self.state.lock().unwrap();
                    st.log
                        .iter()
                        .find(|(k, _, o, rv)| {
                            *rv > since
                                && *k == key
                                && in_scope(o["metadata"]["namespace"].as_str().unwrap_or(""))
                                && selector_matches(sel, o)
                        })
                        .cloned()
                };
                if let Some((_, ty, obj, _)) = ev {
                    let line = serde_json::to_vec(&json!({"type": ty, "object": obj})).unwrap();
                    send.send_response(Response::builder().body(Body::from(line)).unwrap());
                    return;
                }
                notified.await;
            }
        }
        let mut st = self.state.lock().unwrap();
        if let Some(msg) = st.fail_next_list.take() {
            send.send_response(json_response(500, &status(500, "InternalError", &msg)));
            return;
        }
        let items: Vec<Value> = st
            .objects
            .iter()
            .filter(|((k, _, _), s)| *k == key && in_scope(&s.ns) && selector_matches(sel, &s.obj))
            .map(|(_, s)| s.obj.clone())
            .collect();
        let kind = items
            .first()
            .and_then(|i| i["kind"].as_str())
            .map(|k| format!("{k}List"))
            .unwrap_or_else(|| "List".into());
        let rv = st.rv.to_string();
        send.send_response(json_response(200, &json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": rv}, "items": items})));
    }
}

// ---------------------------------------------------------------------------
// Scenarios: an ordered list of expected requests with their responses.
// ---------------------------------------------------------------------------

/// One expected request and the response to serve.
pub struct Expect {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, &'static str)>,
    pub check: Box<dyn Fn(&Seen) + Send>,
    /// `None`: never answer (the client times out).
    pub respond: Option<(u16, Value)>,
}

impl Expect {
    pub fn new(method: Method, path: impl Into<String>) -> Expect {
        Expect {
            method,
            path: path.into(),
            query: vec![],
            check: Box::new(|_| {}),
            respond: Some((200, json!({}))),
        }
    }
    pub fn query(mut self, k: &'static str, v: &'static str) -> Expect {
        self.query.push((k, v));
        self
    }
    pub fn check(mut self, f: impl Fn(&Seen) + Send + 'static) -> Expect {
        self.check = Box::new(f);
        self
    }
    pub fn respond(mut self, code: u16, body: Value) -> Expect {
        self.respond = Some((code, body));
        self
    }
    pub fn hang(mut self) -> Expect {
        self.respond = None;
        self
    }
}

/// Serves `expects` in order, asserting method, path, query and the check; then
/// asserts that no other request comes (under paused time the wait is instant).
pub async fn scenario(
    handle: &mut Handle<Request<Body>, Response<Body>>,
    expects: Vec<Expect>,
) -> Vec<Seen> {
    let mut seen_all = Vec::new();
    let mut parked = Vec::new();
    for e in expects {
        let (seen, send) = next(handle).await;
        classify(&seen, "kube-system", "dnswarden");
        assert_eq!(
            (&seen.method, seen.path.as_str()),
            (&e.method, e.path.as_str()),
            "request {seen:#?}"
        );
        for (k, v) in &e.query {
            assert_eq!(
                seen.query.get(*k).map(String::as_str),
                Some(*v),
                "query {k} of {seen:#?}"
            );
        }
        (e.check)(&seen);
        match e.respond {
            Some((code, body)) => send.send_response(json_response(code, &body)),
            None => parked.push(send),
        }
        seen_all.push(seen);
    }
    // Auto-advance under paused time only happens when every task is idle, so 1 ms
    // of virtual time is enough to see a pending request without moving clocks much.
    let more = tokio::time::timeout(Duration::from_millis(1), handle.next_request()).await;
    if let Ok(Some((req, _))) = more {
        panic!("unexpected extra request {:#?}", seen_of(req).await);
    }
    // Hung requests stay unanswered (dropping them would fail them early, before
    // the client's own timeout).
    std::mem::forget(parked);
    seen_all
}
