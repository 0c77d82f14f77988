//! Overrides of the proxy-wasm SDK's helper methods (`get_*`, `set_*`, `send_*`, ...).
//!
//! The SDK's traits give every helper a default body that wraps a host call (many with an
//! `unwrap` and their own serialisation code). `Box<dyn ...>` puts every method of a
//! trait in the vtable, so all those bodies end up in the `.wasm` although the filter
//! never calls them: it only implements the `on_*` callbacks and calls
//! `proxy_wasm::hostcalls` directly. Overriding them with one shared body lets the
//! linker drop the host-call wrappers (and the panic formatting they pull in); the
//! dispatcher itself never calls these helpers.
//!
//! Generated from the trait definitions of proxy-wasm 0.2.5; a new SDK method keeps its
//! default body, so an SDK update stays correct (only possibly larger).

/// The body of every overridden helper: never reached (nothing in the filter or the
/// SDK's dispatcher calls these methods); traps without pulling in panic formatting.
#[cold]
#[inline(never)]
pub(crate) fn unused() -> ! {
    std::process::abort()
}

/// `Context`'s host-call helpers.
macro_rules! context {
    () => {
        fn get_current_time(&self) -> ::std::time::SystemTime {
            $crate::stubs::unused()
        }

        fn get_property(&self, _path: Vec<&str>) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_property(&self, _path: Vec<&str>, _value: Option<&[u8]>) {
            $crate::stubs::unused()
        }

        fn get_shared_data(&self, _key: &str) -> (Option<::proxy_wasm::types::Bytes>, Option<u32>) {
            $crate::stubs::unused()
        }

        fn set_shared_data(
            &self,
            _key: &str,
            _value: Option<&[u8]>,
            _cas: Option<u32>,
        ) -> Result<(), ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn remove_shared_data(
            &self,
            _key: &str,
            _cas: Option<u32>,
        ) -> Result<(), ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn register_shared_queue(&self, _name: &str) -> u32 {
            $crate::stubs::unused()
        }

        fn resolve_shared_queue(&self, _vm_id: &str, _name: &str) -> Option<u32> {
            $crate::stubs::unused()
        }

        fn dequeue_shared_queue(
            &self,
            _queue_id: u32,
        ) -> Result<Option<::proxy_wasm::types::Bytes>, ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn enqueue_shared_queue(
            &self,
            _queue_id: u32,
            _value: Option<&[u8]>,
        ) -> Result<(), ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn dispatch_http_call(
            &self,
            _upstream: &str,
            _headers: Vec<(&str, &str)>,
            _body: Option<&[u8]>,
            _trailers: Vec<(&str, &str)>,
            _timeout: ::std::time::Duration,
        ) -> Result<u32, ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_headers(&self) -> Vec<(String, String)> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_headers_bytes(
            &self,
        ) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_header(&self, _name: &str) -> Option<String> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_header_bytes(
            &self,
            _name: &str,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_body(
            &self,
            _start: usize,
            _max_size: usize,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_trailers(&self) -> Vec<(String, String)> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_trailers_bytes(
            &self,
        ) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_trailer(&self, _name: &str) -> Option<String> {
            $crate::stubs::unused()
        }

        fn get_http_call_response_trailer_bytes(
            &self,
            _name: &str,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn dispatch_grpc_call(
            &self,
            _upstream_name: &str,
            _service_name: &str,
            _method_name: &str,
            _initial_metadata: Vec<(&str, &[u8])>,
            _message: Option<&[u8]>,
            _timeout: ::std::time::Duration,
        ) -> Result<u32, ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn get_grpc_call_response_body(
            &self,
            _start: usize,
            _max_size: usize,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn cancel_grpc_call(&self, _token_id: u32) {
            $crate::stubs::unused()
        }

        fn open_grpc_stream(
            &self,
            _cluster_name: &str,
            _service_name: &str,
            _method_name: &str,
            _initial_metadata: Vec<(&str, &[u8])>,
        ) -> Result<u32, ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn get_grpc_stream_initial_metadata(&self) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn get_grpc_stream_initial_metadata_value(
            &self,
            _name: &str,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn send_grpc_stream_message(
            &self,
            _token_id: u32,
            _message: Option<&[u8]>,
            _end_stream: bool,
        ) {
            $crate::stubs::unused()
        }

        fn get_grpc_stream_message(
            &mut self,
            _start: usize,
            _max_size: usize,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn get_grpc_stream_trailing_metadata(&self) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn get_grpc_stream_trailing_metadata_value(
            &self,
            _name: &str,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn cancel_grpc_stream(&self, _token_id: u32) {
            $crate::stubs::unused()
        }

        fn close_grpc_stream(&self, _token_id: u32) {
            $crate::stubs::unused()
        }

        fn get_grpc_status(&self) -> (u32, Option<String>) {
            $crate::stubs::unused()
        }

        fn call_foreign_function(
            &self,
            _function_name: &str,
            _arguments: Option<&[u8]>,
        ) -> Result<Option<::proxy_wasm::types::Bytes>, ::proxy_wasm::types::Status> {
            $crate::stubs::unused()
        }

        fn done(&self) {
            $crate::stubs::unused()
        }
    };
}

/// `RootContext`'s host-call helpers.
macro_rules! root_context {
    () => {
        fn get_vm_configuration(&self) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn get_plugin_configuration(&self) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_tick_period(&self, _period: ::std::time::Duration) {
            $crate::stubs::unused()
        }
    };
}

/// `StreamContext`'s host-call helpers.
macro_rules! stream_context {
    () => {
        fn get_downstream_data(
            &self,
            _start: usize,
            _max_size: usize,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_downstream_data(&self, _start: usize, _size: usize, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn resume_downstream(&self) {
            $crate::stubs::unused()
        }

        fn close_downstream(&self) {
            $crate::stubs::unused()
        }

        fn get_upstream_data(
            &self,
            _start: usize,
            _max_size: usize,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_upstream_data(&self, _start: usize, _size: usize, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn resume_upstream(&self) {
            $crate::stubs::unused()
        }

        fn close_upstream(&self) {
            $crate::stubs::unused()
        }
    };
}

/// `HttpContext`'s host-call helpers.
macro_rules! http_context {
    () => {
        fn get_http_request_headers(&self) -> Vec<(String, String)> {
            $crate::stubs::unused()
        }

        fn get_http_request_headers_bytes(&self) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn set_http_request_headers(&self, _headers: Vec<(&str, &str)>) {
            $crate::stubs::unused()
        }

        fn set_http_request_headers_bytes(&self, _headers: Vec<(&str, &[u8])>) {
            $crate::stubs::unused()
        }

        fn get_http_request_header(&self, _name: &str) -> Option<String> {
            $crate::stubs::unused()
        }

        fn get_http_request_header_bytes(&self, _name: &str) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_http_request_header(&self, _name: &str, _value: Option<&str>) {
            $crate::stubs::unused()
        }

        fn set_http_request_header_bytes(&self, _name: &str, _value: Option<&[u8]>) {
            $crate::stubs::unused()
        }

        fn add_http_request_header(&self, _name: &str, _value: &str) {
            $crate::stubs::unused()
        }

        fn add_http_request_header_bytes(&self, _name: &str, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn remove_http_request_header(&self, _name: &str) {
            $crate::stubs::unused()
        }

        fn get_http_request_body(
            &self,
            _start: usize,
            _max_size: usize,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_http_request_body(&self, _start: usize, _size: usize, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn get_http_request_trailers(&self) -> Vec<(String, String)> {
            $crate::stubs::unused()
        }

        fn get_http_request_trailers_bytes(&self) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn set_http_request_trailers(&self, _trailers: Vec<(&str, &str)>) {
            $crate::stubs::unused()
        }

        fn set_http_request_trailers_bytes(&self, _trailers: Vec<(&str, &[u8])>) {
            $crate::stubs::unused()
        }

        fn get_http_request_trailer(&self, _name: &str) -> Option<String> {
            $crate::stubs::unused()
        }

        fn get_http_request_trailer_bytes(
            &self,
            _name: &str,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_http_request_trailer(&self, _name: &str, _value: Option<&str>) {
            $crate::stubs::unused()
        }

        fn set_http_request_trailer_bytes(&self, _name: &str, _value: Option<&[u8]>) {
            $crate::stubs::unused()
        }

        fn add_http_request_trailer(&self, _name: &str, _value: &str) {
            $crate::stubs::unused()
        }

        fn add_http_request_trailer_bytes(&self, _name: &str, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn remove_http_request_trailer(&self, _name: &str) {
            $crate::stubs::unused()
        }

        fn resume_http_request(&self) {
            $crate::stubs::unused()
        }

        fn reset_http_request(&self) {
            $crate::stubs::unused()
        }

        fn get_http_response_headers(&self) -> Vec<(String, String)> {
            $crate::stubs::unused()
        }

        fn get_http_response_headers_bytes(&self) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn set_http_response_headers(&self, _headers: Vec<(&str, &str)>) {
            $crate::stubs::unused()
        }

        fn set_http_response_headers_bytes(&self, _headers: Vec<(&str, &[u8])>) {
            $crate::stubs::unused()
        }

        fn get_http_response_header(&self, _name: &str) -> Option<String> {
            $crate::stubs::unused()
        }

        fn get_http_response_header_bytes(
            &self,
            _name: &str,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_http_response_header(&self, _name: &str, _value: Option<&str>) {
            $crate::stubs::unused()
        }

        fn set_http_response_header_bytes(&self, _name: &str, _value: Option<&[u8]>) {
            $crate::stubs::unused()
        }

        fn add_http_response_header(&self, _name: &str, _value: &str) {
            $crate::stubs::unused()
        }

        fn add_http_response_header_bytes(&self, _name: &str, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn remove_http_response_header(&self, _name: &str) {
            $crate::stubs::unused()
        }

        fn get_http_response_body(
            &self,
            _start: usize,
            _max_size: usize,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_http_response_body(&self, _start: usize, _size: usize, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn get_http_response_trailers(&self) -> Vec<(String, String)> {
            $crate::stubs::unused()
        }

        fn get_http_response_trailers_bytes(&self) -> Vec<(String, ::proxy_wasm::types::Bytes)> {
            $crate::stubs::unused()
        }

        fn set_http_response_trailers(&self, _trailers: Vec<(&str, &str)>) {
            $crate::stubs::unused()
        }

        fn set_http_response_trailers_bytes(&self, _trailers: Vec<(&str, &[u8])>) {
            $crate::stubs::unused()
        }

        fn get_http_response_trailer(&self, _name: &str) -> Option<String> {
            $crate::stubs::unused()
        }

        fn get_http_response_trailer_bytes(
            &self,
            _name: &str,
        ) -> Option<::proxy_wasm::types::Bytes> {
            $crate::stubs::unused()
        }

        fn set_http_response_trailer(&self, _name: &str, _value: Option<&str>) {
            $crate::stubs::unused()
        }

        fn set_http_response_trailer_bytes(&self, _name: &str, _value: Option<&[u8]>) {
            $crate::stubs::unused()
        }

        fn add_http_response_trailer(&self, _name: &str, _value: &str) {
            $crate::stubs::unused()
        }

        fn add_http_response_trailer_bytes(&self, _name: &str, _value: &[u8]) {
            $crate::stubs::unused()
        }

        fn remove_http_response_trailer(&self, _name: &str) {
            $crate::stubs::unused()
        }

        fn resume_http_response(&self) {
            $crate::stubs::unused()
        }

        fn reset_http_response(&self) {
            $crate::stubs::unused()
        }

        fn send_http_response(
            &self,
            _status_code: u32,
            _headers: Vec<(&str, &str)>,
            _body: Option<&[u8]>,
        ) {
            $crate::stubs::unused()
        }

        fn send_grpc_response(
            &self,
            _grpc_status: ::proxy_wasm::types::GrpcStatusCode,
            _grpc_status_message: Option<&str>,
            _custom_metadata: Vec<(&str, &[u8])>,
        ) {
            $crate::stubs::unused()
        }
    };
}

pub(crate) use {context, http_context, root_context, stream_context};
