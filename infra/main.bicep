// Sync Doctor on Azure: the bot's container on App Service for Linux, an Azure Bot with the Teams channel,
// Azure Storage (tables and queues: the shared store), Key Vault for the secrets (App Service reads them
// through Key Vault references with a user-assigned managed identity), and Application Insights.
//
//   az deployment group create -g <resource group> -f infra/main.bicep -p infra/main.parameters.json
//
// docs/deploy.md walks through it, from the app registrations to the Teams app upload.

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

@description('The bot\'s Microsoft App ID: the application (client) id of its single-tenant Entra app registration.')
param botAppId string

@description('A client secret of the bot\'s app registration.')
@secure()
param botAppPassword string

@description('Tenant of the bot\'s app registration.')
param botAppTenantId string = tenant().tenantId

@description('The Dynamics 365 org, e.g. https://contoso.crm.dynamics.com.')
param dataverseUrl string

@description('Application (client) id of the app registration that is the Dataverse application user and holds the Graph permission.')
param dataverseClientId string

@description('A client secret of that app registration.')
@secure()
param dataverseClientSecret string

@description('Tenant of the Dynamics 365 org and of its users\' mailboxes.')
param dataverseTenantId string = tenant().tenantId

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
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var acrPull = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

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
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('${name}-kv-${suffix}', 24)
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 30
  }
}

resource botPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'bot-app-password'
  properties: { value: botAppPassword }
}

resource dataverseSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'dataverse-client-secret'
  properties: { value: dataverseClientSecret }
}

resource storeSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'store-connection-string'
  properties: {
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
  }
}

// The identity reads the secrets (Key Vault references) and nothing else in the vault.
resource readSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
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
    keyVaultReferenceIdentity: identity.id
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
        // Bot Framework (its own names): inbound requests are authenticated against this app id.
        { name: 'MicrosoftAppId', value: botAppId }
        { name: 'MicrosoftAppPassword', value: '@Microsoft.KeyVault(SecretUri=${botPasswordSecret.properties.secretUri})' }
        { name: 'MicrosoftAppType', value: 'SingleTenant' }
        { name: 'MicrosoftAppTenantId', value: botAppTenantId }
        // Dataverse and Graph, with client-credentials tokens for the Dataverse application user.
        { name: 'DATAVERSE_URL', value: dataverseUrl }
        { name: 'GRAPH_URL', value: graphUrl }
        { name: 'AZURE_TENANT_ID', value: dataverseTenantId }
        { name: 'AZURE_CLIENT_ID', value: dataverseClientId }
        { name: 'AZURE_CLIENT_SECRET', value: '@Microsoft.KeyVault(SecretUri=${dataverseSecret.properties.secretUri})' }
        { name: 'AZURE_AUTHORITY_HOST', value: authorityHost }
        // Who may use it, and who is helpdesk.
        { name: 'ALLOWED_TENANTS', value: allowedTenants }
        { name: 'HELPDESK_AGENTS', value: helpdeskAgents }
        // The shared store: every instance (and any `deliver` worker) uses the same account.
        { name: 'STORE_URL', value: '@Microsoft.KeyVault(SecretUri=${storeSecret.properties.secretUri})' }
        { name: 'SWEEP_INTERVAL_MINUTES', value: string(sweepIntervalMinutes) }
        { name: 'OUTBOX_LEASE_SECONDS', value: string(outboxLeaseSeconds) }
        { name: 'DIAGNOSIS_BUDGET_SECONDS', value: string(diagnosisBudgetSeconds) }
        // Observability: JSON logs to the console (App Service collects them), traces to Application Insights.
        { name: 'LOG_FORMAT', value: 'json' }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        // App Service itself: the port the container listens on.
        { name: 'WEBSITES_PORT', value: '3978' }
      ]
    }
  }
  dependsOn: [readSecrets]
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: '${name}-bot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: { name: botSku }
  properties: {
    displayName: 'Sync Doctor'
    endpoint: 'https://${site.properties.defaultHostName}/api/messages'
    msaAppId: botAppId
    msaAppType: 'SingleTenant'
    msaAppTenantId: botAppTenantId
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

@description('Paste into the bot\'s registration if you manage it elsewhere; the Azure Bot here already uses it.')
output messagingEndpoint string = 'https://${site.properties.defaultHostName}/api/messages'
output webAppName string = site.name
output storageAccountName string = storage.name
output keyVaultName string = vault.name
output applicationInsightsName string = insights.name
output managedIdentityClientId string = identity.properties.clientId
