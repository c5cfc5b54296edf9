//! Whole-device RPCs: GetRPCMethods, Reboot, FactoryReset, ScheduleInform.

use serde::{Deserialize, Serialize};

use super::{Message, empty_message, string_list, text, u32_or, write_string_list};
use crate::cwmp::{DecodeError, XmlWriter, xml::Element};

empty_message!(
    GetRPCMethods,
    RebootResponse,
    FactoryReset,
    FactoryResetResponse,
    ScheduleInformResponse
);

/// `GetRPCMethodsResponse`: the methods the answering side supports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRPCMethodsResponse {
    pub methods: Vec<String>,
}

impl Message for GetRPCMethodsResponse {
    const NAME: &'static str = "GetRPCMethodsResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetRPCMethodsResponse {
            methods: string_list(el, "MethodList"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        write_string_list(w, "MethodList", &self.methods);
    }
}

/// `Reboot`; the CPE reports `M Reboot` with this CommandKey afterwards.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reboot {
    #[serde(default)]
    pub command_key: String,
}

impl Message for Reboot {
    const NAME: &'static str = "Reboot";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(Reboot {
            command_key: text(el, "CommandKey"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("CommandKey", &self.command_key);
    }
}

/// `ScheduleInform`: ask for an Inform in `delay_seconds`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInform {
    pub delay_seconds: u32,
    #[serde(default)]
    pub command_key: String,
}

impl Message for ScheduleInform {
    const NAME: &'static str = "ScheduleInform";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(ScheduleInform {
            delay_seconds: u32_or(el, "DelaySeconds", 0),
            command_key: text(el, "CommandKey"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.num_element("DelaySeconds", self.delay_seconds);
        w.text_element("CommandKey", &self.command_key);
    }
}
