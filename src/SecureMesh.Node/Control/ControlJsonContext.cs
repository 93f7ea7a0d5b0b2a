using System.Text.Json;
using System.Text.Json.Serialization;

namespace SecureMesh.Node.Control;

/// <summary>
/// The control API's records with their JSON code generated at build time: the only resolver of the API's JSON settings
/// (<see cref="ControlServer.Json"/>, the server's HTTP settings), so the API works alike in the JIT, ReadyToRun and
/// Native AOT builds and starts without building serializers by reflection (about 40 ms at the start of every command
/// that talks to the node). A record or list the API sends or receives must be listed here; one that is not fails with
/// NotSupportedException (ControlWireFormatTests pins every record).
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ErrorInfo))]
[JsonSerializable(typeof(NodeStatus))]
[JsonSerializable(typeof(ConnectionInfo))]
[JsonSerializable(typeof(TransferInfo))]
[JsonSerializable(typeof(HandshakeInfo))]
[JsonSerializable(typeof(RefusalInfo))]
[JsonSerializable(typeof(ReachabilityInfo))]
[JsonSerializable(typeof(PeerInfo))]
[JsonSerializable(typeof(IReadOnlyList<PeerInfo>))]
[JsonSerializable(typeof(PeerActionResult))]
[JsonSerializable(typeof(AddPeerRequest))]
[JsonSerializable(typeof(BlockRequest))]
[JsonSerializable(typeof(RenameRequest))]
[JsonSerializable(typeof(BlocklistInfo))]
[JsonSerializable(typeof(BlockedPeerInfo))]
[JsonSerializable(typeof(BlockedAddressInfo))]
[JsonSerializable(typeof(BlockedContentInfo))]
[JsonSerializable(typeof(SettingInfo))]
[JsonSerializable(typeof(IReadOnlyList<SettingInfo>))]
[JsonSerializable(typeof(ConfigValue))]
[JsonSerializable(typeof(ConfigSetRequest))]
[JsonSerializable(typeof(ConfigSetResult))]
[JsonSerializable(typeof(LogEntryInfo))]
[JsonSerializable(typeof(IReadOnlyList<LogEntryInfo>))]
[JsonSerializable(typeof(LogVerification))]
[JsonSerializable(typeof(DiscoveredPeerInfo))]
[JsonSerializable(typeof(IReadOnlyList<DiscoveredPeerInfo>))]
[JsonSerializable(typeof(ShareInfo))]
[JsonSerializable(typeof(IReadOnlyList<ShareInfo>))]
[JsonSerializable(typeof(ShareRequest))]
[JsonSerializable(typeof(GroupMemberInfo))]
[JsonSerializable(typeof(GroupInfo))]
[JsonSerializable(typeof(IReadOnlyList<GroupInfo>))]
[JsonSerializable(typeof(GroupCreateRequest))]
[JsonSerializable(typeof(GroupMembersRequest))]
[JsonSerializable(typeof(GroupMembersResult))]
[JsonSerializable(typeof(ShareAudienceRequest))]
[JsonSerializable(typeof(ShareAudienceInfo))]
[JsonSerializable(typeof(ShareAddInfo))]
[JsonSerializable(typeof(SearchHitInfo))]
[JsonSerializable(typeof(IReadOnlyList<SearchHitInfo>))]
[JsonSerializable(typeof(DownloadRequest))]
[JsonSerializable(typeof(DownloadInfo))]
[JsonSerializable(typeof(IReadOnlyList<DownloadInfo>))]
[JsonSerializable(typeof(QuarantineInfo))]
[JsonSerializable(typeof(IReadOnlyList<QuarantineInfo>))]
[JsonSerializable(typeof(ReleaseRequest))]
[JsonSerializable(typeof(PingRequest))]
[JsonSerializable(typeof(PingResult))]
internal sealed partial class ControlJsonContext : JsonSerializerContext;
