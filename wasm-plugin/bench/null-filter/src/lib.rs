//! A do-nothing proxy-wasm network filter with dnswarden's unavoidable per-callback work:
//! read the clock and copy the data buffer, on both directions, then `Continue`. Built and
//! run by `../envoy-dnsperf.sh` with `FILTER=null`: Envoy CPU per query with this module
//! minus the plain `tcp_proxy`'s is the cost of the proxy-wasm plumbing alone.

use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root));
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(Stream))
    }
}

struct Stream;

impl Context for Stream {}

impl StreamContext for Stream {
    fn on_downstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        let _ = self.get_current_time();
        let _ = proxy_wasm::hostcalls::get_buffer(BufferType::DownstreamData, 0, size);
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _end_of_stream: bool) -> Action {
        let _ = self.get_current_time();
        let _ = proxy_wasm::hostcalls::get_buffer(BufferType::UpstreamData, 0, size);
        Action::Continue
    }
}
