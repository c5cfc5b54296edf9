//! File transfers: Download, Upload, ScheduleDownload, CancelTransfer, the
//! queued-transfer queries, and the CPE's TransferComplete reports.

use serde::{Deserialize, Serialize};

use super::{
    Message, Password, bool_or_false, empty_message, i32_or, items, text, u32_or, u32_required,
    u64_or,
};
use crate::cwmp::{DecodeError, XmlWriter, xml::Element};

empty_message!(
    TransferCompleteResponse,
    AutonomousTransferCompleteResponse,
    RequestDownloadResponse,
    ScheduleDownloadResponse,
    CancelTransferResponse,
    GetQueuedTransfers,
    GetAllQueuedTransfers
);

/// `FaultStruct` of a transfer report: code 0 means success.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferFault {
    pub fault_code: u32,
    #[serde(default)]
    pub fault_string: String,
}

impl TransferFault {
    fn decode(el: Element<'_, '_>, child: &str) -> TransferFault {
        match el.child(child) {
            Some(f) => TransferFault {
                fault_code: u32_or(f, "FaultCode", 0),
                fault_string: text(f, "FaultString"),
            },
            None => TransferFault::default(),
        }
    }

    fn encode(&self, w: &mut XmlWriter, name: &str) {
        w.open(name);
        w.num_element("FaultCode", self.fault_code);
        w.text_element("FaultString", &self.fault_string);
        w.close(name);
    }

    pub fn is_success(&self) -> bool {
        self.fault_code == 0
    }
}

/// `TransferComplete` (CPE → ACS): the outcome of a Download or Upload the
/// ACS asked for, matched by CommandKey.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferComplete {
    pub command_key: String,
    pub fault: TransferFault,
    pub start_time: String,
    pub complete_time: String,
}

impl Message for TransferComplete {
    const NAME: &'static str = "TransferComplete";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(TransferComplete {
            command_key: text(el, "CommandKey"),
            fault: TransferFault::decode(el, "FaultStruct"),
            start_time: text(el, "StartTime"),
            complete_time: text(el, "CompleteTime"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("CommandKey", &self.command_key);
        self.fault.encode(w, "FaultStruct");
        w.text_element("StartTime", &self.start_time);
        w.text_element("CompleteTime", &self.complete_time);
    }
}

/// `AutonomousTransferComplete` (CPE → ACS): a transfer the ACS did not ask
/// for (e.g. started from the CPE's web UI).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutonomousTransferComplete {
    pub announce_url: String,
    pub transfer_url: String,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u64,
    pub target_file_name: String,
    pub fault: TransferFault,
    pub start_time: String,
    pub complete_time: String,
}

impl Message for AutonomousTransferComplete {
    const NAME: &'static str = "AutonomousTransferComplete";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(AutonomousTransferComplete {
            announce_url: text(el, "AnnounceURL"),
            transfer_url: text(el, "TransferURL"),
            is_download: bool_or_false(el, "IsDownload"),
            file_type: text(el, "FileType"),
            file_size: u64_or(el, "FileSize", 0),
            target_file_name: text(el, "TargetFileName"),
            fault: TransferFault::decode(el, "FaultStruct"),
            start_time: text(el, "StartTime"),
            complete_time: text(el, "CompleteTime"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("AnnounceURL", &self.announce_url);
        w.text_element("TransferURL", &self.transfer_url);
        w.bool_element("IsDownload", self.is_download);
        w.text_element("FileType", &self.file_type);
        w.num_element("FileSize", self.file_size);
        w.text_element("TargetFileName", &self.target_file_name);
        self.fault.encode(w, "FaultStruct");
        w.text_element("StartTime", &self.start_time);
        w.text_element("CompleteTime", &self.complete_time);
    }
}

/// `ArgStruct` of a RequestDownload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTypeArg {
    pub name: String,
    pub value: String,
}

/// `RequestDownload` (CPE → ACS): the CPE asks to be sent a file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestDownload {
    pub file_type: String,
    #[serde(default)]
    pub file_type_args: Vec<FileTypeArg>,
}

impl Message for RequestDownload {
    const NAME: &'static str = "RequestDownload";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(RequestDownload {
            file_type: text(el, "FileType"),
            file_type_args: items(el, "FileTypeArg")
                .map(|a| FileTypeArg {
                    name: text(a, "Name"),
                    value: text(a, "Value"),
                })
                .collect(),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("FileType", &self.file_type);
        w.open_array("FileTypeArg", "cwmp:ArgStruct", self.file_type_args.len());
        for a in &self.file_type_args {
            w.open("ArgStruct");
            w.text_element("Name", &a.name);
            w.text_element("Value", &a.value);
            w.close("ArgStruct");
        }
        w.close("FileTypeArg");
    }
}

/// `Download` (ACS → CPE): fetch a file (`"1 Firmware Upgrade Image"`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Download {
    #[serde(default)]
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Password,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub target_file_name: String,
    #[serde(default)]
    pub delay_seconds: u32,
    #[serde(default)]
    pub success_url: String,
    #[serde(default)]
    pub failure_url: String,
}

impl Message for Download {
    const NAME: &'static str = "Download";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(Download {
            command_key: text(el, "CommandKey"),
            file_type: text(el, "FileType"),
            url: text(el, "URL"),
            username: text(el, "Username"),
            password: Password(text(el, "Password")),
            file_size: u64_or(el, "FileSize", 0),
            target_file_name: text(el, "TargetFileName"),
            delay_seconds: u32_or(el, "DelaySeconds", 0),
            success_url: text(el, "SuccessURL"),
            failure_url: text(el, "FailureURL"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("CommandKey", &self.command_key);
        w.text_element("FileType", &self.file_type);
        w.text_element("URL", &self.url);
        w.text_element("Username", &self.username);
        w.text_element("Password", &self.password.0);
        w.num_element("FileSize", self.file_size);
        w.text_element("TargetFileName", &self.target_file_name);
        w.num_element("DelaySeconds", self.delay_seconds);
        w.text_element("SuccessURL", &self.success_url);
        w.text_element("FailureURL", &self.failure_url);
    }
}

/// Response to Download or Upload: `status` 0 = done (times valid),
/// 1 = will report with TransferComplete later.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferResponse {
    pub status: u32,
    pub start_time: String,
    pub complete_time: String,
}

impl TransferResponse {
    fn decode(el: Element<'_, '_>, name: &'static str) -> Result<Self, DecodeError> {
        Ok(TransferResponse {
            status: u32_required(el, name, "Status")?,
            start_time: text(el, "StartTime"),
            complete_time: text(el, "CompleteTime"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.num_element("Status", self.status);
        w.text_element("StartTime", &self.start_time);
        w.text_element("CompleteTime", &self.complete_time);
    }
}

macro_rules! transfer_response {
    ($($name:ident),*) => {$(
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub TransferResponse);

        impl Message for $name {
            const NAME: &'static str = stringify!($name);

            fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
                TransferResponse::decode(el, stringify!($name)).map($name)
            }

            fn encode(&self, w: &mut XmlWriter) {
                self.0.encode(w)
            }
        }
    )*};
}
transfer_response!(DownloadResponse, UploadResponse);

/// `Upload` (ACS → CPE): send a file (configuration, log) to a URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    #[serde(default)]
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Password,
    #[serde(default)]
    pub delay_seconds: u32,
}

impl Message for Upload {
    const NAME: &'static str = "Upload";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(Upload {
            command_key: text(el, "CommandKey"),
            file_type: text(el, "FileType"),
            url: text(el, "URL"),
            username: text(el, "Username"),
            password: Password(text(el, "Password")),
            delay_seconds: u32_or(el, "DelaySeconds", 0),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("CommandKey", &self.command_key);
        w.text_element("FileType", &self.file_type);
        w.text_element("URL", &self.url);
        w.text_element("Username", &self.username);
        w.text_element("Password", &self.password.0);
        w.num_element("DelaySeconds", self.delay_seconds);
    }
}

/// `TimeWindowStruct` of a ScheduleDownload (offsets in seconds from now).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub window_start: u32,
    pub window_end: u32,
    pub window_mode: String,
    #[serde(default)]
    pub user_message: String,
    #[serde(default)]
    pub max_retries: i32,
}

/// `ScheduleDownload` (ACS → CPE): a download within time windows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleDownload {
    #[serde(default)]
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Password,
    #[serde(default)]
    pub file_size: u64,
    #[serde(default)]
    pub target_file_name: String,
    pub time_windows: Vec<TimeWindow>,
}

impl Message for ScheduleDownload {
    const NAME: &'static str = "ScheduleDownload";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(ScheduleDownload {
            command_key: text(el, "CommandKey"),
            file_type: text(el, "FileType"),
            url: text(el, "URL"),
            username: text(el, "Username"),
            password: Password(text(el, "Password")),
            file_size: u64_or(el, "FileSize", 0),
            target_file_name: text(el, "TargetFileName"),
            time_windows: items(el, "TimeWindowList")
                .map(|t| TimeWindow {
                    window_start: u32_or(t, "WindowStart", 0),
                    window_end: u32_or(t, "WindowEnd", 0),
                    window_mode: text(t, "WindowMode"),
                    user_message: text(t, "UserMessage"),
                    max_retries: i32_or(t, "MaxRetries", 0),
                })
                .collect(),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("CommandKey", &self.command_key);
        w.text_element("FileType", &self.file_type);
        w.text_element("URL", &self.url);
        w.text_element("Username", &self.username);
        w.text_element("Password", &self.password.0);
        w.num_element("FileSize", self.file_size);
        w.text_element("TargetFileName", &self.target_file_name);
        w.open_array(
            "TimeWindowList",
            "cwmp:TimeWindowStruct",
            self.time_windows.len(),
        );
        for t in &self.time_windows {
            w.open("TimeWindowStruct");
            w.num_element("WindowStart", t.window_start);
            w.num_element("WindowEnd", t.window_end);
            w.text_element("WindowMode", &t.window_mode);
            w.text_element("UserMessage", &t.user_message);
            w.num_element("MaxRetries", t.max_retries);
            w.close("TimeWindowStruct");
        }
        w.close("TimeWindowList");
    }
}

/// `CancelTransfer` (ACS → CPE).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelTransfer {
    pub command_key: String,
}

impl Message for CancelTransfer {
    const NAME: &'static str = "CancelTransfer";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(CancelTransfer {
            command_key: text(el, "CommandKey"),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.text_element("CommandKey", &self.command_key);
    }
}

/// `QueuedTransferStruct`: state 1 not started, 2 in progress, 3 completed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedTransfer {
    pub command_key: String,
    pub state: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetQueuedTransfersResponse {
    pub transfers: Vec<QueuedTransfer>,
}

impl Message for GetQueuedTransfersResponse {
    const NAME: &'static str = "GetQueuedTransfersResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetQueuedTransfersResponse {
            transfers: items(el, "TransferList")
                .map(|t| QueuedTransfer {
                    command_key: text(t, "CommandKey"),
                    state: u32_or(t, "State", 0),
                })
                .collect(),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.open_array(
            "TransferList",
            "cwmp:QueuedTransferStruct",
            self.transfers.len(),
        );
        for t in &self.transfers {
            w.open("QueuedTransferStruct");
            w.text_element("CommandKey", &t.command_key);
            w.num_element("State", t.state);
            w.close("QueuedTransferStruct");
        }
        w.close("TransferList");
    }
}

/// `AllQueuedTransferStruct`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllQueuedTransfer {
    pub command_key: String,
    pub state: u32,
    pub is_download: bool,
    pub file_type: String,
    pub file_size: u64,
    pub target_file_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetAllQueuedTransfersResponse {
    pub transfers: Vec<AllQueuedTransfer>,
}

impl Message for GetAllQueuedTransfersResponse {
    const NAME: &'static str = "GetAllQueuedTransfersResponse";

    fn decode(el: Element<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetAllQueuedTransfersResponse {
            transfers: items(el, "TransferList")
                .map(|t| AllQueuedTransfer {
                    command_key: text(t, "CommandKey"),
                    state: u32_or(t, "State", 0),
                    is_download: bool_or_false(t, "IsDownload"),
                    file_type: text(t, "FileType"),
                    file_size: u64_or(t, "FileSize", 0),
                    target_file_name: text(t, "TargetFileName"),
                })
                .collect(),
        })
    }

    fn encode(&self, w: &mut XmlWriter) {
        w.open_array(
            "TransferList",
            "cwmp:AllQueuedTransferStruct",
            self.transfers.len(),
        );
        for t in &self.transfers {
            w.open("AllQueuedTransferStruct");
            w.text_element("CommandKey", &t.command_key);
            w.num_element("State", t.state);
            w.bool_element("IsDownload", t.is_download);
            w.text_element("FileType", &t.file_type);
            w.num_element("FileSize", t.file_size);
            w.text_element("TargetFileName", &t.target_file_name);
            w.close("AllQueuedTransferStruct");
        }
        w.close("TransferList");
    }
}
