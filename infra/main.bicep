// Sync Doctor on Azure, with no secret anywhere: one user-assigned managed identity is the bot's identity
// with the Bot Framework (Azure Bot `msaAppType: 'UserAssignedMSI'`), reads Dataverse and Graph (tokens
// from App Service's identity endpoint), opens the store (Storage Table/Queue Data Contributor; the account
// allows no key) and pulls the image (AcrPull). The bot's container runs on App Service for Linux, with an
// Azure Bot and its Teams channel, Azure Storage (tables and queues: the shared store) and Application
// Insights. Nothing expires, so there is nothing to rotate and no Key Vault to keep it in.
//
//   az deployment group create -g <resource group> -f infra/main.bicep -p @my.parameters.json
//   (my.parameters.json: a copy of infra/main.parameters.json with your values)
//
// docs/deploy.md walks through it, from the image to the identity's permissions and the Teams app upload.

targetScope = 'resourceGroup'

@description('Prefix of every resource name: lowercase letters and digits, 3 to 11 characters.')
@minLength(3)
@maxLength(11)
param name string = 'syncdoctor'

@description('Region of the resources (the Azure Bot itself is global).')
param location string = resourceGroup().location

@description('The container image to run, e.g. myregistry.azurecr.io/sync-doctor:1.0.0 (built from infra/Dockerfile).')
param containerImage string

@description('Name of an Azure Container Registry in this resource group holding the image; the managed identity gets AcrPull on it. Empty for a public image.')
param containerRegistryName string = ''

@description('The Dynamics 365 org, e.g. https://contoso.crm.dynamics.com.')
param dataverseUrl string

@description('Microsoft Graph endpoint (national clouds have their own).')
param graphUrl string = 'https://graph.microsoft.com'

@description('Entra ID sign-in endpoint (national clouds have their own).')
param authorityHost string = environment().authentication.loginEndpoint

@description('Entra object ids of the helpdesk agents, comma-separated: they may diagnose others and set the helpdesk channel.')
param helpdeskAgents string = ''

@description('Tenants whose users may use the bot, comma-separated (empty: any tenant the bot is installed in).')
param allowedTenants string = tenant().tenantId

@description('How often the bot runs the proactive sweep, in minutes (0: never; then schedule `python -m bot sweep`).')
param sweepIntervalMinutes int = 30

@description('How long a delivery worker holds the outbox entries it claimed, in seconds.')
param outboxLeaseSeconds int = 30
@description('Days a sent notice keeps its body; its tell-once key stays (OUTBOX_RETENTION_DAYS).')
param outboxRetentionDays int = 30

@description('Seconds after a one-click fix when the bot checks again, comma-separated (FIX_RECHECK_AFTER): after the next server-side sync cycles.')
param fixRecheckAfter string = '900,2400'
@description('One delivery leader per store paces the instances as one sender (OUTBOX_LEADER; false: each instance paces itself).')
param outboxLeader bool = true

@description('How long one diagnosis may take, retries included, in seconds (Teams waits 15).')
param diagnosisBudgetSeconds int = 11

@description('App Service plan size: B1 for a pilot, P1v3 or larger for a tenant-wide rollout.')
param appServiceSku string = 'B1'

@description('Instances of the web app: more than one needs nothing else, the store is shared.')
@minValue(1)
param instanceCount int = 1

@description('Azure Bot pricing tier: F0 (free, standard channels) or S1.')
@allowed(['F0', 'S1'])
param botSku string = 'F0'

var suffix = uniqueString(resourceGroup().id, name)
var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'

// The app's one identity: the bot (MicrosoftAppId), the Dataverse application user and Graph/Exchange
// reader (AZURE_CLIENT_ID), the store's user, the image's puller. Its service principal exists with it.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${name}-id'
  location: location
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-insights'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take('${name}${suffix}', 24)
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Entra tokens only: no account key works, so none can leak or needs rotating.
    allowSharedKeyAccess: false
  }
}

// The store: tables (tickets, references, the outbox's entries) and queues (the outbox's work), as the identity.
resource storeTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storeQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = if (!empty(containerRegistryName)) {
  name: containerRegistryName
}

resource pullImages 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(containerRegistryName)) {
  name: guid(resourceGroup().id, containerRegistryName, identity.id, acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPull)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${name}-plan'
  location: location
  kind: 'linux'
  sku: { name: appServiceSku, capacity: instanceCount }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: '${name}-${suffix}'
  location: location
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'DOCKER|${containerImage}'
      acrUseManagedIdentityCreds: !empty(containerRegistryName)
      acrUserManagedIdentityID: empty(containerRegistryName) ? null : identity.properties.clientId
      alwaysOn: true
      http20Enabled: true
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      healthCheckPath: '/readyz'
      appSettings: [
        // Bot Framework (its own names): the bot is the managed identity; botbuilder gets its tokens from
        // App Service's identity endpoint, and inbound requests are authenticated against its client id.
        { name: 'MicrosoftAppType', value: 'UserAssignedMSI' }
        { name: 'MicrosoftAppId', value: identity.properties.clientId }
        { name: 'MicrosoftAppTenantId', value: tenant().tenantId }
        // Dataverse and Graph as the same identity: it is the Dataverse application user.
        { name: 'DATAVERSE_URL', value: dataverseUrl }
        { name: 'GRAPH_URL', value: graphUrl }
        { name: 'AZURE_USE_MANAGED_IDENTITY', value: 'true' }
        { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
        { name: 'AZURE_TENANT_ID', value: tenant().tenantId }
        { name: 'AZURE_AUTHORITY_HOST', value: authorityHost }
        // Who may use it, and who is helpdesk.
        { name: 'ALLOWED_TENANTS', value: allowedTenants }
        { name: 'HELPDESK_AGENTS', value: helpdeskAgents }
        // The shared store: every instance (and any `deliver` worker) uses the same account.
        // Its endpoints and no key: opened as the identity (Storage Table/Queue Data Contributor).
        { name: 'STORE_URL', value: 'TableEndpoint=${storage.properties.primaryEndpoints.table};QueueEndpoint=${storage.properties.primaryEndpoints.queue}' }
        { name: 'SWEEP_INTERVAL_MINUTES', value: string(sweepIntervalMinutes) }
        { name: 'OUTBOX_LEASE_SECONDS', value: string(outboxLeaseSeconds) }
        { name: 'OUTBOX_RETENTION_DAYS', value: string(outboxRetentionDays) }
        { name: 'FIX_RECHECK_AFTER', value: fixRecheckAfter }
        { name: 'OUTBOX_LEADER', value: string(outboxLeader) }
        { name: 'DIAGNOSIS_BUDGET_SECONDS', value: string(diagnosisBudgetSeconds) }
        // Observability: JSON logs to the console (App Service collects them), traces to Application Insights.
        { name: 'LOG_FORMAT', value: 'json' }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        // App Service itself: the port the container listens on.
        { name: 'WEBSITES_PORT', value: '3978' }
      ]
    }
  }
  // The roles first: the first sweep and /readyz use the store as soon as the container starts.
  dependsOn: [storeTables, storeQueues, pullImages]
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: '${name}-bot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: { name: botSku }
  properties: {
    displayName: 'Sync Doctor'
    endpoint: 'https://${site.properties.defaultHostName}/api/messages'
    msaAppType: 'UserAssignedMSI'
    msaAppId: identity.properties.clientId
    msaAppMSIResourceId: identity.id
    msaAppTenantId: tenant().tenantId
    developerAppInsightsApplicationId: insights.properties.AppId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: { isEnabled: true }
  }
}

@description('The Azure Bot\'s messaging endpoint, already set on it.')
output messagingEndpoint string = 'https://${site.properties.defaultHostName}/api/messages'
output webAppName string = site.name
output storageAccountName string = storage.name
output applicationInsightsName string = insights.name
@description('The client id: the bot\'s Microsoft App ID and --bot-id of the Teams app package, the Dataverse application user, Exchange -AppId.')
output managedIdentityClientId string = identity.properties.clientId
@description('The object id of the identity\'s service principal: Graph app role assignments, Exchange -ObjectId.')
output managedIdentityPrincipalId string = identity.properties.principalId
output tenantId string = tenant().tenantId
