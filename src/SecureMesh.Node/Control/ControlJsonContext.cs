using System.Text.Json;
using System.Text.Json.Serialization;

namespace SecureMesh.Node.Control;

/// <summary>
/// The control API's records with their JSON code generated at build time. Without it, the first use of each record
/// builds its serializer by reflection and Reflection.Emit: about 40 ms at the start of every command that talks to the
/// node (a `get` through a running node among them). Anything not listed still works through the reflection resolver
/// that <see cref="ControlServer.Json"/> keeps behind this one.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ErrorInfo))]
[JsonSerializable(typeof(NodeStatus))]
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
[JsonSerializable(typeof(IReadOnlyList<SettingInfo>))]
[JsonSerializable(typeof(ConfigValue))]
[JsonSerializable(typeof(ConfigSetRequest))]
[JsonSerializable(typeof(ConfigSetResult))]
[JsonSerializable(typeof(IReadOnlyList<LogEntryInfo>))]
[JsonSerializable(typeof(LogVerification))]
[JsonSerializable(typeof(IReadOnlyList<DiscoveredPeerInfo>))]
[JsonSerializable(typeof(IReadOnlyList<ShareInfo>))]
[JsonSerializable(typeof(ShareRequest))]
[JsonSerializable(typeof(IReadOnlyList<GroupInfo>))]
[JsonSerializable(typeof(GroupInfo))]
[JsonSerializable(typeof(GroupCreateRequest))]
[JsonSerializable(typeof(GroupMembersRequest))]
[JsonSerializable(typeof(GroupMembersResult))]
[JsonSerializable(typeof(ShareAudienceRequest))]
[JsonSerializable(typeof(ShareAudienceInfo))]
[JsonSerializable(typeof(ShareAddInfo))]
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
