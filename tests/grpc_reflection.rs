//! Server reflection in its older `grpc.reflection.v1alpha` form, as Python's
//! grpcio-reflection, grpcui, Postman and older grpcurl speak it: the real daemon, a real
//! v1alpha client (tonic-reflection's generated one), the same answers as v1.

#[path = "support/daemon.rs"]
mod daemon_support;

use daemon_support::{DaemonBuilder, UpBackend, basic_config};
use prost::Message;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};

async fn ask(
    c: &mut ServerReflectionClient<tonic::transport::Channel>,
    req: MessageRequest,
) -> ServerReflectionResponse {
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(req),
    };
    let mut answers = c
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    answers
        .message()
        .await
        .expect("an answer")
        .expect("one message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1alpha_lists_services_and_serves_descriptors() {
    let backend = UpBackend::start("127.0.0.2");
    let d = DaemonBuilder::new(basic_config(backend.port()))
        .start()
        .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", d.grpc_addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut c = ServerReflectionClient::new(channel);

    let list = ask(&mut c, MessageRequest::ListServices(String::new())).await;
    let Some(MessageResponse::ListServicesResponse(list)) = list.message_response else {
        panic!("list services expected: {list:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["maglev.v1.Maglev", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }

    // What grpcurl/grpcui do next: the file defining a service, decodable, naming it.
    let file = ask(
        &mut c,
        MessageRequest::FileContainingSymbol("maglev.v1.Maglev".into()),
    )
    .await;
    let Some(MessageResponse::FileDescriptorResponse(files)) = file.message_response else {
        panic!("file descriptor expected: {file:?}")
    };
    let decoded: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_slice()).expect("descriptor"))
        .collect();
    assert!(
        decoded
            .iter()
            .any(|f| f.package() == "maglev.v1" && f.service.iter().any(|s| s.name() == "Maglev")),
        "{:?}",
        decoded.iter().map(|f| f.name()).collect::<Vec<_>>()
    );

    // An unknown symbol: tonic-reflection ends the stream with NOT_FOUND.
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol("no.Such".into())),
    };
    let mut answers = c
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("stream opens")
        .into_inner();
    let end = answers.message().await;
    assert_eq!(
        end.err().map(|s| s.code()),
        Some(tonic::Code::NotFound),
        "unknown symbol"
    );
}
