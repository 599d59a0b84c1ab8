//! The `[client]` table into [`ClientReceive`]: how the driver's
//! connections receive, for slow-consumer (backpressure) cases.

use toml::Spanned;

use crate::driver::input_error::InputError;
use crate::driver::profile::fields::Expander;
use crate::driver::profile::limits::{
    MAX_READ_RATE_BYTES_PER_SECOND, MAX_RECEIVE_BUFFER_BYTES, MIN_READ_RATE_BYTES_PER_SECOND,
    MIN_RECEIVE_BUFFER_BYTES,
};
use crate::driver::profile::raw::RawClient;
use crate::results::workload::ClientReceive;

impl Expander<'_> {
    /// Every option is optional; no table means the driver reads as fast
    /// as it can into default buffers.
    pub(super) fn client(
        &self,
        raw: &Option<Spanned<RawClient>>,
    ) -> Result<ClientReceive, InputError> {
        let Some(raw) = raw else {
            return Ok(ClientReceive::default());
        };
        let client = raw.get_ref();
        let receive_buffer_bytes = client
            .receive_buffer_bytes
            .as_ref()
            .map(|value| {
                self.int_in(
                    value,
                    "client.receive_buffer_bytes",
                    MIN_RECEIVE_BUFFER_BYTES,
                    MAX_RECEIVE_BUFFER_BYTES,
                )
            })
            .transpose()?;
        let read_rate_bytes_per_second = client
            .read_rate_bytes_per_second
            .as_ref()
            .map(|value| {
                self.int_in(
                    value,
                    "client.read_rate_bytes_per_second",
                    MIN_READ_RATE_BYTES_PER_SECOND,
                    MAX_READ_RATE_BYTES_PER_SECOND,
                )
            })
            .transpose()?;
        if receive_buffer_bytes.is_none() && read_rate_bytes_per_second.is_none() {
            return Err(self.error(
                raw.span(),
                "client",
                "give receive_buffer_bytes, read_rate_bytes_per_second or both (or drop the \
                 empty table)",
            ));
        }
        Ok(ClientReceive {
            receive_buffer_bytes,
            read_rate_bytes_per_second,
        })
    }
}
