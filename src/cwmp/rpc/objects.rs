//! AddObject and DeleteObject: creating and removing object instances.

use serde::{Deserialize, Serialize};

use super::{Message, text, u32_required};
use crate::cwmp::{DecodeError, XmlWriter, xml::Element};

/// AddObject and DeleteObject carry the same arguments: an object path
/// ending with a dot (`Device.WiFi.SSID.` to add, `Device.WiFi.SSID.4.` to
/// delete) and the ParameterKey the CPE records on success.
macro_rules! object_request {
    ($($(#[$doc:meta])* $name:ident),*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            pub object_name: String,
            #[serde(default)]
            pub parameter_key: String,
        }

        impl Message for $name {
            const NAME: &'static str = stringify!($name);

            fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
                Ok($name {
                    object_name: text(el, "ObjectName"),
                    parameter_key: text(el, "ParameterKey"),
                })
            }

            fn encode(&self, w: &mut XmlWriter) {
                w.text_element("ObjectName", &self.object_name);
                w.text_element("ParameterKey", &self.parameter_key);
            }
        }
    )*};
}

object_request!(
    /// `AddObject`: creates an instance; the response names its number.
    AddObject,
    /// `DeleteObject`: removes an instance.
    DeleteObject
);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddObjectResponse {
    pub instance_number: u32,
    pub status: u32,
}

impl Message for AddObjectResponse {
    const NAME: &'static str = "AddObjectResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(AddObjectResponse {
            instance_number: u32_required(el, "AddObjectResponse", "InstanceNumber")?,
            status: u32_required(el, "AddObjectResponse", "Status")?,
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.num_element("InstanceNumber", self.instance_number);
        w.num_element("Status", self.status);
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteObjectResponse {
    pub status: u32,
}

impl Message for DeleteObjectResponse {
    const NAME: &'static str = "DeleteObjectResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(DeleteObjectResponse {
            status: u32_required(el, "DeleteObjectResponse", "Status")?,
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.num_element("Status", self.status);
    }
}
