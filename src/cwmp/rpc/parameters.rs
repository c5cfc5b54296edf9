//! Parameter RPCs: GetParameterNames/Values/Attributes, SetParameterValues/
//! Attributes.

use serde::{Deserialize, Serialize};

use super::{
    Message, bool_or_false, empty_message, items, parameter_values, string_list, text, u32_or,
    u32_required, write_parameter_values, write_string_list,
};
use crate::cwmp::{DecodeError, ParameterValue, XmlWriter, value::parse_bool, xml::Element};

/// `GetParameterNames`: the names under a path (`NextLevel` = children only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterNames {
    pub parameter_path: String,
    pub next_level: bool,
}

impl Message for GetParameterNames {
    const NAME: &'static str = "GetParameterNames";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterNames {
            parameter_path: text(el, "ParameterPath"),
            next_level: bool_or_false(el, "NextLevel"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("ParameterPath", &self.parameter_path);
        w.bool_element("NextLevel", self.next_level);
    }
}

/// `ParameterInfoStruct`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterInfo {
    pub name: String,
    pub writable: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterNamesResponse {
    pub parameters: Vec<ParameterInfo>,
}

impl Message for GetParameterNamesResponse {
    const NAME: &'static str = "GetParameterNamesResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        let parameters = items(el, "ParameterList")
            .filter_map(|p| {
                let name = p.child_text("Name");
                (!name.is_empty()).then(|| ParameterInfo {
                    name: name.to_owned(),
                    writable: parse_bool(p.child_text("Writable")).unwrap_or(false),
                })
            })
            .collect();
        Ok(GetParameterNamesResponse { parameters })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.open_array(
            "ParameterList",
            "cwmp:ParameterInfoStruct",
            self.parameters.len(),
        );
        for p in &self.parameters {
            w.open("ParameterInfoStruct");
            w.text_element("Name", &p.name);
            w.bool_element("Writable", p.writable);
            w.close("ParameterInfoStruct");
        }
        w.close("ParameterList");
    }
}

/// `GetParameterValues`: values of parameters or whole subtrees (a name
/// ending in `.`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterValues {
    pub names: Vec<String>,
}

impl Message for GetParameterValues {
    const NAME: &'static str = "GetParameterValues";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterValues {
            names: string_list(el, "ParameterNames"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        write_string_list(w, "ParameterNames", &self.names);
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterValuesResponse {
    pub parameters: Vec<ParameterValue>,
}

impl Message for GetParameterValuesResponse {
    const NAME: &'static str = "GetParameterValuesResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterValuesResponse {
            parameters: parameter_values(el, "ParameterList"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        write_parameter_values(w, "ParameterList", &self.parameters);
    }
}

/// `SetParameterValues`. `parameter_key` is stored by the CPE in
/// `ManagementServer.ParameterKey` when the set succeeds, which is how the
/// ACS later knows what was applied without reading secrets back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParameterValues {
    pub parameters: Vec<ParameterValue>,
    #[serde(default)]
    pub parameter_key: String,
}

impl Message for SetParameterValues {
    const NAME: &'static str = "SetParameterValues";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(SetParameterValues {
            parameters: parameter_values(el, "ParameterList"),
            parameter_key: text(el, "ParameterKey"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        write_parameter_values(w, "ParameterList", &self.parameters);
        w.text_element("ParameterKey", &self.parameter_key);
    }
}

/// `Status` 0: applied; 1: applied, takes effect after a reboot or commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParameterValuesResponse {
    pub status: u32,
}

impl Message for SetParameterValuesResponse {
    const NAME: &'static str = "SetParameterValuesResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(SetParameterValuesResponse {
            status: u32_required(el, "SetParameterValuesResponse", "Status")?,
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.num_element("Status", self.status);
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterAttributes {
    pub names: Vec<String>,
}

impl Message for GetParameterAttributes {
    const NAME: &'static str = "GetParameterAttributes";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetParameterAttributes {
            names: string_list(el, "ParameterNames"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        write_string_list(w, "ParameterNames", &self.names);
    }
}

/// `ParameterAttributeStruct`: notification level (0 off, 1 passive,
/// 2 active, …) and access list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterAttribute {
    pub name: String,
    pub notification: u32,
    pub access_list: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetParameterAttributesResponse {
    pub parameters: Vec<ParameterAttribute>,
}

impl Message for GetParameterAttributesResponse {
    const NAME: &'static str = "GetParameterAttributesResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        let parameters = items(el, "ParameterList")
            .filter_map(|p| {
                let name = p.child_text("Name");
                (!name.is_empty()).then(|| ParameterAttribute {
                    name: name.to_owned(),
                    notification: u32_or(p, "Notification", 0),
                    access_list: string_list(p, "AccessList"),
                })
            })
            .collect();
        Ok(GetParameterAttributesResponse { parameters })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.open_array(
            "ParameterList",
            "cwmp:ParameterAttributeStruct",
            self.parameters.len(),
        );
        for p in &self.parameters {
            w.open("ParameterAttributeStruct");
            w.text_element("Name", &p.name);
            w.num_element("Notification", p.notification);
            write_string_list(w, "AccessList", &p.access_list);
            w.close("ParameterAttributeStruct");
        }
        w.close("ParameterList");
    }
}

/// `SetParameterAttributesStruct`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParameterAttribute {
    pub name: String,
    pub notification_change: bool,
    pub notification: u32,
    pub access_list_change: bool,
    #[serde(default)]
    pub access_list: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetParameterAttributes {
    pub parameters: Vec<SetParameterAttribute>,
}

impl Message for SetParameterAttributes {
    const NAME: &'static str = "SetParameterAttributes";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        let parameters = items(el, "ParameterList")
            .map(|p| SetParameterAttribute {
                name: text(p, "Name"),
                notification_change: bool_or_false(p, "NotificationChange"),
                notification: u32_or(p, "Notification", 0),
                access_list_change: bool_or_false(p, "AccessListChange"),
                access_list: string_list(p, "AccessList"),
            })
            .collect();
        Ok(SetParameterAttributes { parameters })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.open_array(
            "ParameterList",
            "cwmp:SetParameterAttributesStruct",
            self.parameters.len(),
        );
        for p in &self.parameters {
            w.open("SetParameterAttributesStruct");
            w.text_element("Name", &p.name);
            w.bool_element("NotificationChange", p.notification_change);
            w.num_element("Notification", p.notification);
            w.bool_element("AccessListChange", p.access_list_change);
            write_string_list(w, "AccessList", &p.access_list);
            w.close("SetParameterAttributesStruct");
        }
        w.close("ParameterList");
    }
}

empty_message!(SetParameterAttributesResponse);
